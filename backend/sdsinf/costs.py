"""What an SDS-Inf run would cost on Lambda, and the medians over repeated runs the original reports."""

from __future__ import annotations

from typing import Any

# AWS Lambda on-demand prices, x86, us-east-1 (published 2024): per GB-second and per request.
PRICE_GB_S = 0.0000166667
PRICE_REQUEST = 0.20 / 1_000_000
DEFAULT_MEMORY_MB = 3008  # the sdsinf stack's FnMemory default


def estimate_cost(summary: dict[str, Any], memory_mb: int = DEFAULT_MEMORY_MB) -> dict[str, float]:
    """What the run would cost on Lambda: every worker billed for the run's wall time (an upper
    bound: workers that finish early stop billing), plus one request a worker and the coordinator."""
    workers = int(summary.get("workers", 1))
    gb_s = float(summary.get("runtime_s", 0.0)) * workers * memory_mb / 1024
    requests = workers + (1 if summary.get("variant") in ("object", "queue") else 0)
    if summary.get("variant") == "server":
        return {"gb_seconds": 0.0, "requests": 0, "cost_usd": 0.0}
    return {
        "gb_seconds": round(gb_s, 3),
        "requests": requests,
        "cost_usd": round(gb_s * PRICE_GB_S + requests * PRICE_REQUEST, 6),
    }


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The original reports medians over repeated runs (3 by default)."""
    import statistics

    keys = ("runtime_s", "compute_s", "edges_per_s", "cost_usd")
    return {k: statistics.median(float(s.get(k, 0.0)) for s in summaries) for k in keys} | {
        "runs": [s["run_id"] for s in summaries],
        "all_match_truth": all(s.get("matches_truth") is not False for s in summaries),
    }
