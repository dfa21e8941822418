"""Treatment courses for any regimen written as data: cycles, dose rules and rounding, toxicity, caps."""
