"""Security: the security manager, password policy, server-side sessions, rate limits."""
