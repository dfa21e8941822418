"""Treatment courses: 21-day cycles of anlotinib + penpulimab + capecitabine (ALTER-HN005 Arm 1)."""
