"""Reports: Markdown/JSON tables and plots."""

from transferkit.report.plots import plot_history, plot_tsne, tsne_embed
from transferkit.report.tables import markdown_table, mean_std, to_json, write_text_atomic

__all__ = ["markdown_table", "mean_std", "plot_history", "plot_tsne", "to_json", "tsne_embed", "write_text_atomic"]
