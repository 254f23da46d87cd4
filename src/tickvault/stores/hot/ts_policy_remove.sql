SELECT delete_job(%(job_id)s)
