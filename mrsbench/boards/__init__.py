"""Results become boards: collecting and validating results files (``leaderboard``), the verdict
(``verdict``), rendering the markdown and HTML page (``render``), comparing two results (``compare``) and
submitting a plugin (``submit``)."""
