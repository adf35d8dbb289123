"""The original's published run, kept in skydeck so that `sdsinf compare RUN --with published` has
something to compare with on a fresh machine.

The figures are those of SDS-Inf/SDS-Inf-Code's resources/master_metrics_c1_1024n_8w_10000bs_queue.csv
(commit eee16f9): the c1 run, Queue variant, 8 workers, 1024 neurons x 120 layers, 10,000 inputs in
one batch, on AWS Lambda. `--with FILE` still takes any master_metrics file of the original's form.
"""

from __future__ import annotations

SOURCE = "SDS-Inf/SDS-Inf-Code resources/master_metrics_c1_1024n_8w_10000bs_queue.csv (commit eee16f9)"
NAMES = ("published", "c1")  # what --with takes for this row

C1_QUEUE: dict[str, str] = {
    "CONFIG": "c1_1024n_8w_10000bs_queue", "BFR": "8", "NLEVELS": "1", "TOTAL_NWORKERS": "8",
    "NUM_NEURONS": "1024", "NUM_LAYERS": "120", "NUM_DATA": "10000", "BATCH_SIZE": "10000", "NUM_BATCHES": "1",
    "METRIC_PUBLISH_CALLS": "1102", "METRIC_NUM_MESSAGES_SENT": "6774", "METRIC_SIZE_MESSAGES_SENT": "104131260",
    "METRIC_RECEIVE_POLL_CALLS": "4318", "METRIC_NUM_MESSAGES_RECEIVED": "6774",
    "METRIC_SIZE_MESSAGES_RECEIVED": "104131260", "METRIC_ELAPSED_TIME_BATCH": "507.99377",
    "METRIC_ELAPSED_TIME_COMMUNICATION": "484.44894", "METRIC_ELAPSED_TIME_COMPUTATION": "22.377314",
    "METRIC_ELAPSED_TIME_COMPRESSION": "15.093239", "METRIC_LAMBDA_RUNTIME": "568.61206",
    "METRIC_DYNAMODB_ITEMS_WRITTEN": "2", "METRIC_DYNAMODB_TOTAL_ITEMS_READ": "2",
    "METRIC_DYNAMODB_UNIQUE_ITEMS_READ": "2", "METRIC_MAX_ROW_NNZ": "9931", "METRIC_MAX_MESSAGE_SIZE": "157769",
    "METRIC_MAX_BATCH_MSG_SIZE": "259362",
}  # fmt: skip
