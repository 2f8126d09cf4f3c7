"""The reference studies (overlap, window x levels, strategies, retention, learning curves,
energy), sweeps and the reproduction report.

Each study is a function ``<name>_study(run, **settings) -> StudyOutcome`` in its own module
(:mod:`~memlearn.experiments.overlap`, ...); :func:`memlearn.experiments.reproduce.reproduce`
runs them and writes the report.  Importing this package is cheap: the study modules are
imported where they are used.
"""

STUDY_NAMES = (
    "overlap",
    "window",
    "strategies",
    "retention",
    "curves",
    "energy",
    "spirit",
    "ep",
    "continual",
)
# What `memlearn reproduce` runs when no study is named: the reference chip's six studies.  The
# other systems' studies (SPIRIT, equilibrium propagation) train networks on MNIST and take far
# longer; they run when named.
DEFAULT_STUDIES = STUDY_NAMES[:6]
