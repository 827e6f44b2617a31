"""The aiohttp server: route table and lifecycle (`app`), the front door middleware (`access`)."""
