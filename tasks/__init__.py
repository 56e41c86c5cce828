"""ARQ job functions and the core they share: snapshot store, diff, event model, routing."""
