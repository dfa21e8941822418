"""Drug supply from depot to patient: presentations, lots, shipments, dispensing, resupply, expiry."""
