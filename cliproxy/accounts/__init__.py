"""Users, teams, access groups, invitations, members' keys and sessions: the accounts store and its rules."""
