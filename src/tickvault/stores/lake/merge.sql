-- Merge adjacent small files of the tick table, partition by partition.
CALL ducklake_merge_adjacent_files('lake', 'ticks');
