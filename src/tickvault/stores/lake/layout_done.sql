-- True once layout.sql ran to its end (its last statement sets this option).
SELECT count(*) > 0 FROM ducklake_options('lake')
WHERE option_name = 'data_inlining_row_limit' AND scope_entry = 'main.ingest_checkpoint'
