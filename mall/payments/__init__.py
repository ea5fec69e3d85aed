"""Payment with a WeChat-Pay-shaped provider: the adapter (fake and real), prepay, notifications, reconciliation."""
