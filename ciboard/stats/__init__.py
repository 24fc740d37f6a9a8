"""Pure statistics for CI Board: plain values and frames in, plain values and
frames out. No database, no Streamlit.

- spc: XmR, p (and Laney p′) and u/c charts with Making Data Count's rules and
  icons; Anhøj runs analysis.
- intervals: Wilson, Newcombe, t and Welch confidence intervals; Pearson's
  correlation with its Fisher z interval.
- disparity: gaps between student groups; IDEA risk ratios.
- compare: funnel limits, case-mix adjusted observed/expected comparisons (against the
  district, or matched against a comparison group), and the difference in differences.
"""
