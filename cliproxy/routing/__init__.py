"""Routing: model id → candidate credentials (`catalog`), picking one (`scheduler`), the attempt loop (`dispatch`)."""
