"""The engine: plan, teachers, parse, verify, store, build."""
