"""cktat_book: the machinery of the CKTAT book's pages, beside the library `cktat_core` it drives.

The library trains and evaluates; this package decides and assembles what a page says. It imports the library,
never the other way round (a test checks the direction). Its modules are named after the part of the book they
serve (ARCHITECTURE.md draws the layers):

- every chapter: `chapter` (`Chapter`, a notebook's entry point: configs and shared runs), `book_runs` (every run the
  table chapters read, by stage: `cktat runs`), `noise` (the one three-way comparison), `claims` (a claim of a
  paper as tested, and the rules of a verdict), `report` (tables, the papers' numbers, shared sentences),
  `figures`, `explorer`;
- one chapter each: `mechanism` (01), `headline` (02), `label_design` (03), `evaluation` (04), `attributions`
  (05), `capacity` (06), `ablations` (07), `baselines` (08, and the rows 09 shares), `raat_ducat` (09),
  `budget` (10), `scorecard` (the scorecard and the audit of the paper's own numbers);
- the site: `reproduce` (re-executing stale chapters), `site` (building it, Colab badges).
"""
