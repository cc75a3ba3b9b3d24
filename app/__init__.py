"""The clinic payment platform: mini-program API, channel notifications, services, domain."""
