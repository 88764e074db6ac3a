"""Running the platform on a schedule: an Apache Airflow DAG generated from ``pipeline.yaml``.

The cron line for one machine is printed by ``make schedule``; ``churn.scheduling.airflow``
writes the Airflow DAG (``churn airflow-dag``, ``make airflow-dag``). See README "Scheduling".
"""
