"""Stores: the hot store and the lake, each owning its SQL, behind one contract."""
