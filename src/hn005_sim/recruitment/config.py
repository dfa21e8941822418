"""The `[recruitment]` section: sites grouped in regions, the screening funnel's timing, seasonal dips.

Rates are candidates referred per site per MONTH (30.4375 days) in the config, as registries and
feasibility studies quote them; the simulation converts them to days. Every figure that describes the
world carries its `source` (a citation, or `assumption: why`).
"""

from __future__ import annotations

import datetime as dt
import math

from pydantic import Field, model_validator

from hn005_sim.scenario.base import Figure, Probability, Strict
from hn005_sim.scenario.dists import Dist

MONTH_DAYS = 30.4375
"""Days per month (365.25 / 12), the unit in which reports quote time."""


class Capacity(Strict):
    """Most candidates a site can have in screening at once (coordinators, clinic slots)."""

    value: int = Field(gt=0)
    source: str = Field(min_length=3)


class Region(Strict):
    """A group of sites that share their start-up, referral and capacity figures.

    Site referral rates are gamma-distributed across sites (Poisson-gamma model, Anisimov & Fedorov,
    Stat Med 2007;26:4958) with the given mean and variance: shape = mean^2/variance,
    scale = variance/mean (candidates per site per month).
    """

    name: str = Field(min_length=1)
    province: str | None = None
    sites: int = Field(ge=0, le=2_000, description="number of sites in the region (<= 2,000: a typo guard)")
    site_names: list[str] | None = Field(default=None, description="one name per site; default REGION-1..")
    referral_rate_mean: Figure = Field(description="candidates referred per site per month, mean of sites")
    referral_rate_variance: Figure = Field(description="variance across sites of the referral rate")
    activation_delay_days: Dist = Field(description="days from trial start until the site opens")
    never_activate: Probability
    ramp_up_months: Figure | None = Field(
        default=None, description="months after opening over which referrals rise linearly to full rate"
    )
    screening_capacity: Capacity | None = Field(default=None, description="None: no limit")
    close_month: Figure | None = Field(default=None, description="months from trial start the site closes")
    site_type: str | None = Field(
        default=None, description="a site type of [chart_review]: what the charts hold before consent "
        "(default chart_review.site_type)")
    chart_known: dict[str, Probability] = Field(
        default_factory=dict, description="this region's own P(known at prescreen) per panel or column, "
        "over its site type's")
    max_sites: int | None = Field(
        default=None, ge=0, le=2_000,
        description="most sites `sites` may plan in this region (default max(10, 3 x sites)); 1 for a site "
        "that cannot be repeated, such as the sponsor's own",
    )
    # site costs for `sites` (the planning file's convention, docs/recruitment_analytic.md); None: 0
    cost_startup: Figure | None = Field(default=None, description="per site, once (recruitment.currency)")
    cost_per_month: Figure | None = Field(default=None, description="per site per month open")
    cost_per_patient: Figure | None = Field(default=None, description="per patient enrolled (first dose)")

    @model_validator(mode="after")
    def _check(self):
        if self.max_sites is not None and self.max_sites < self.sites:
            raise ValueError(f"max_sites must be >= sites ({self.sites}), got {self.max_sites}")
        if self.site_names is not None and len(self.site_names) != self.sites:
            raise ValueError(
                f"site_names must have one name per site ({self.sites}), got {len(self.site_names)}")
        if self.referral_rate_mean.value <= 0:
            raise ValueError(f"referral_rate_mean.value must be > 0, got {self.referral_rate_mean.value}")
        if self.referral_rate_variance.value <= 0:
            raise ValueError(
                f"referral_rate_variance.value must be > 0, got {self.referral_rate_variance.value}"
            )
        if self.ramp_up_months is not None and self.ramp_up_months.value < 0:
            raise ValueError(f"ramp_up_months.value must be >= 0, got {self.ramp_up_months.value}")
        if self.close_month is not None and self.close_month.value <= 0:
            raise ValueError(f"close_month.value must be > 0, got {self.close_month.value}")
        for key in ("cost_startup", "cost_per_month", "cost_per_patient"):
            fig = getattr(self, key)
            if fig is not None and not (math.isfinite(fig.value) and fig.value >= 0):
                raise ValueError(f"{key}.value must be a finite number >= 0, got {fig.value}")
        return self

    def gamma_shape_scale_per_day(self) -> tuple[float, float]:
        """Gamma shape and scale of the site referral rate in candidates per site per DAY."""
        m, v = self.referral_rate_mean.value, self.referral_rate_variance.value
        return m * m / v, v / m / MONTH_DAYS

    def names(self) -> list[str]:
        return list(self.site_names) if self.site_names is not None else [
            f"{self.name}-{i + 1}" for i in range(self.sites)
        ]


class SeasonalDip(Strict):
    """Referrals fall to `multiplier` x normal from `days_before` each date until `days_after` it."""

    name: str
    dates: list[dt.date] = Field(min_length=1)
    days_before: float = Field(ge=0)
    days_after: float = Field(ge=0)
    multiplier: Probability


class Rescreen(Strict):
    """Screen failures screened again (new labs) after a delay, with a probability."""

    probability: Probability
    delay_days: Dist


class Funnel(Strict):
    """Judge candidates by fixed probabilities instead of the population and criteria models.

    For planners who work from published screen-failure rates, and for checks against closed forms.
    """

    prescreen_pass: Probability
    screen_pass: Probability
    bsa_m2: Dist = Field(description="body-surface area of enrolled patients, for drug demand")


class RecruitmentConfig(Strict):
    horizon_months: Figure = Field(description="simulated months from trial start; recruitment stops then")
    lab_window_days: Figure = Field(description="labs must be no older than this at first dose")
    consent: Probability = Field(description="share of pre-screened candidates who sign consent")
    withdrawal_before_dose: Probability = Field(description="share of eligible who never get a first dose")
    screening_days: Dist = Field(description="consent to eligibility decision (days)")
    rescreen: Rescreen | None = None
    seasonal_dips: list[SeasonalDip] = Field(default_factory=list)
    regions: list[Region] = Field(min_length=1)
    funnel: Funnel | None = None
    referral_multiplier: float | Figure = Field(
        default=1.0,
        description="what-if: every site's referral rate x m (gamma mean x m, variance x m^2); a number "
        "or {value, source}",
    )
    currency: str | None = Field(default=None, max_length=8,
                                 description="unit of the regions' costs, e.g. USD")
    candidate_batch: int = Field(
        default=256, gt=0, le=100_000,
        description="candidates drawn and judged at once per site (computational, not a world figure)",
    )

    @model_validator(mode="after")
    def _check(self):
        if not self.horizon_months.value > 0:
            raise ValueError(f"horizon_months.value must be > 0, got {self.horizon_months.value}")
        m = self.referral_scale
        if not (math.isfinite(m) and 0 < m <= 100):
            raise ValueError(f"referral_multiplier must be a number > 0 and <= 100, got {m}")
        if self.lab_window_days.value < 0:
            raise ValueError(f"lab_window_days.value must be >= 0, got {self.lab_window_days.value}")
        names = [r.name for r in self.regions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"region names must be unique, repeated: {', '.join(dup)}")
        if sum(r.sites for r in self.regions) == 0:
            raise ValueError("there must be at least one site across the regions")
        sites = [s for r in self.regions for s in r.names()]
        dup = sorted({n for n in sites if sites.count(n) > 1})
        if dup:
            raise ValueError(f"site names must be unique, repeated: {', '.join(dup)}")
        return self

    @property
    def referral_scale(self) -> float:
        """The referral multiplier m as a number (1: as configured)."""
        m = self.referral_multiplier
        return float(m.value if isinstance(m, Figure) else m)

    @property
    def horizon_days(self) -> float:
        return self.horizon_months.value * MONTH_DAYS

    def horizon_month_count(self) -> int:
        """Whole months reported in the enrolment curve (0..this)."""
        return math.ceil(self.horizon_months.value - 1e-9)
