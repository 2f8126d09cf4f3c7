"""Meta-trained models shipped with memlearn (package data)."""
