"""Partnerloop's domain: retailers, partnerships, customers, consent, offers and the exchange."""
