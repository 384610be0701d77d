"""Recommendations (DARA-style): rules over the community release and the institution's own data.

The catalog (control.recommend_catalog) says what each type is; this package computes them:
`context` (thresholds, the release part, own data), `collection_rules` and `usage_rules` (one
function per type), `lifecycle` (generate, sync).
Community evidence comes only from the ``recommendations/`` part of the current release,
which is built from the institutions that share for recommendations; an institution
receives recommendations only while its own recommendations sharing is in effect
(reciprocity, README.md "Recommendations"). Own evidence comes from the institution's local store.

generate() computes the candidates of every type (at most MAX_PER_TYPE each, best first)
with their evidence, impact and a downloadable list. sync() records them in the control
database once per release: new targets are offered, open ones get the latest evidence,
ones no longer true expire, and dismissed or implemented ones come back only when the
evidence changed materially (``material_change``; the catalog states the rule per type).
"""

from analytics.views.recommend.context import (PART, Candidate, Context, NotSharing, build_context, open_part,
                                               require_recommendations)
from analytics.views.recommend.lifecycle import (RULES, Result, generate, material_change, may_act, plan_sync,
                                                 recommendations, usage_overview)

__all__ = ["PART", "RULES", "Candidate", "Context", "NotSharing", "Result", "build_context", "generate",
           "material_change", "may_act", "open_part", "plan_sync", "recommendations", "require_recommendations",
           "usage_overview"]
