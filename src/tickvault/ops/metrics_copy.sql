COPY {schema}.metrics (ts, name, labels, value) FROM STDIN
