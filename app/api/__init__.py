"""The mini-program API, the channel notify endpoints and the HIS API: thin views over app.services."""
