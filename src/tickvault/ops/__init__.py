"""Operations: the supervisor, scheduling, metrics, status and health."""
