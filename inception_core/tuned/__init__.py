"""Shipped tuned config tables, one ``<device slug>.json`` per device model (format:
``inception_core/tuned_tables.py``; written by ``inception-core tune``)."""
