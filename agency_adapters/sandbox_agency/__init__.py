"""The sandbox agency: a real ``agency.v1`` server backed by SQLite, with fictional children.

For demos, tests, and integrators who want to see what SafeShare will call. Nothing in it is
real personal data.
"""
