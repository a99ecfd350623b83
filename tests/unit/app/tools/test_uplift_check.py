"""The A/A check of the uplift measurement: both groups decided for and counted alike."""

from __future__ import annotations

from app.decide.policy import PolicyRules
from app.detect.pipeline import Rules
from app.tools.abandonment_comparison import simulated_streams
from app.tools.uplift_check import markdown_section, uplift_counts


def test_both_groups_are_decided_for_in_proportion_to_their_share() -> None:
    _tuning, [events] = simulated_streams(customers=120, days=1.0, tuning_seeds=())

    counts = uplift_counts(events, Rules(policy=PolicyRules(holdout_share=0.5)))

    treated = sum(n for (_r, group, mark), n in counts.items()
                  if group == "treated" and mark == "decided")  # fmt: skip
    holdout = sum(n for (_r, group, mark), n in counts.items()
                  if group == "holdout" and mark == "decided")  # fmt: skip
    assert treated > 20 and holdout > 20
    assert 0.5 < treated / holdout < 2.0


def test_without_a_holdout_only_the_treated_group_is_counted() -> None:
    _tuning, [events] = simulated_streams(customers=40, days=0.5, tuning_seeds=())

    counts = uplift_counts(events, Rules(policy=PolicyRules(holdout_share=0.0)))

    assert counts and {group for _r, group, _m in counts} == {"treated"}


def test_the_section_reports_each_reason_with_its_interval() -> None:
    section = markdown_section(customers=60, days=1.0)

    assert section.startswith("## Uplift: an A/A check on the held-out set")
    assert "| payment_failure |" in section and "The interval covers 0 for" in section
