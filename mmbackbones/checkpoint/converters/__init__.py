"""Key converters: one small module per source format, each pure keys-in/keys-out."""
