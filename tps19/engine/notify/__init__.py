"""Notifications through apprise (TPS19_NOTIFY__URLS): targets.py parses the URLs and their event
classes, notices.py turns engine events into texts, sender.py sends them from the background.
apprise itself is imported only when URLs are configured."""
