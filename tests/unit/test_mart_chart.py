"""The chart on the mart's materialization: trips and revenue per month and service as text bars."""

import datetime

from taxi_platform.assets.dbt import mart_chart


def test_the_mart_chart_has_a_row_per_month_and_service_with_bars_scaled_to_the_largest():
    chart = mart_chart([(datetime.date(2019, 1, 1), "Green", 8, 150.5),
                        (datetime.date(2019, 1, 1), "Yellow", 10_000, 160_000.0),
                        (datetime.date(2019, 2, 1), "Yellow", 5_000, 80_000.0)]).splitlines()
    assert chart[0].startswith("| month | service | trips |")
    assert chart[3] == "| 2019-01 | Yellow | 10,000 | `" + "█" * 20 + "` | 160,000 | `" + "█" * 20 + "` |"
    assert chart[4] == "| 2019-02 | Yellow | 5,000 | `" + "█" * 10 + "` | 80,000 | `" + "█" * 10 + "` |"
    assert "`▏`" in chart[2]  # a few trips still show


def test_an_empty_mart_says_so():
    assert mart_chart([]) == "_The mart is empty._"
