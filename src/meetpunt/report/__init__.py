"""Pictures and reports built from use-case results (pure: data in, text out)."""
