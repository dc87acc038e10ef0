r"""The paper's claims checked one by one (the reproduction issue): :mod:`~sim.reproduce.report`
renders them as ``REPORT.md`` and one self-contained ``report.html``. The ``umwelt reproduce``
command that runs the experiment and measures every claim builds on it and is not written yet.
"""
