"""Views of the wallet API, by topic: devices, the citizen's wallet, the merchant side, and the catalog."""
