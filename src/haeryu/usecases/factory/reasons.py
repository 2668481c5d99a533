"""Human-readable reasons of alerts, in English and Korean, built for a whole frame at once."""

from __future__ import annotations

import polars as pl

SENSOR_KO: dict[str, str] = {
    "temperature": "온도",
    "vibration": "진동",
    "pressure": "압력",
    "current": "전류",
    "rpm": "회전수",
    "flow": "유량",
    "torque": "토크",
    "speed": "속도",
    "*": "전체 센서",
}

_EN: dict[str, str] = {
    "limit": "{sensor} at {value} is outside its operating limits",
    "spike": "{sensor} jumped to {value}, {score}x the spike threshold away from its recent level",
    "shift": "{sensor} at {value} has moved away from its normal level ({score}x the threshold)",
    "rate_of_change": "{sensor} is changing too fast ({score}x the usual rate)",
    "noise": "{sensor} has become noisy ({score}x the alarm level)",
    "stuck": "{sensor} has been stuck at {value} ({score}x the usual longest repeat)",
    "missing": "{sensor} reading is missing",
    "correlation": "{sensor} no longer move together ({score}x the threshold)",
    "multivariate": "sensors together look unlike normal operation (score {score}); most off: {sensor}",
}
_KO: dict[str, str] = {
    "limit": "{sensor} 값 {value}이(가) 운전 한계를 벗어났습니다",
    "spike": "{sensor} 값이 {value}(으)로 급변했습니다 (임계값의 {score}배)",
    "shift": "{sensor} 값 {value}이(가) 정상 수준에서 벗어났습니다 (임계값의 {score}배)",
    "rate_of_change": "{sensor} 값이 너무 빠르게 변하고 있습니다 (평소의 {score}배)",
    "noise": "{sensor} 신호의 잡음이 커졌습니다 (경보 수준의 {score}배)",
    "stuck": "{sensor} 값이 {value}에 고정되어 있습니다 (평소 최대 반복의 {score}배)",
    "missing": "{sensor} 측정값이 누락되었습니다",
    "correlation": "{sensor} 사이의 상관관계가 깨졌습니다 (임계값의 {score}배)",
    "multivariate": "센서 조합이 정상 운전 패턴과 다릅니다 (점수 {score}); 가장 벗어난 센서: {sensor}",
}


def _value(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:.4g}"


def with_reasons(alerts: pl.DataFrame) -> pl.DataFrame:
    """Add ``severity``, ``reason_en`` and ``reason_ko`` to a frame of alerts.

    The strings are formatted per alert in Python: alerts are few next to readings, and
    a Polars ``when/then`` chain over the kinds evaluates every kind's template for
    every row, which measured ~50x slower at a few hundred alerts.
    """
    kinds = alerts["kind"].to_list()
    sensors = alerts["sensor"].to_list()
    values = [_value(v) for v in alerts["value"].to_list()]
    scores = [f"{c:.1f}" for c in alerts["score"].to_list()]
    sensors_en = ["every sensor" if x == "*" else x.replace("|", " and ") for x in sensors]
    sensors_ko = ["와(과) ".join(SENSOR_KO.get(p, p) for p in x.split("|")) for x in sensors]
    en = [
        _EN[k].format(sensor=a, value=v, score=c)
        for k, a, v, c in zip(kinds, sensors_en, values, scores, strict=True)
    ]
    ko = [
        _KO[k].format(sensor=a, value=v, score=c)
        for k, a, v, c in zip(kinds, sensors_ko, values, scores, strict=True)
    ]
    return alerts.with_columns(
        pl.Series(
            "severity",
            ["critical" if c >= 2.0 else "warning" for c in alerts["score"].to_list()],
            pl.String,
        ),
        pl.Series("reason_en", en, pl.String),
        pl.Series("reason_ko", ko, pl.String),
    )
