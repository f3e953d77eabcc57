"""Frame sources (cameras, files, streams, the simulator) behind one URI factory."""
from edge_app.sources.base import Frame, FrameSource, SourceLost
from edge_app.sources.factory import open_source, source_help
from edge_app.sources.reader import FrameReader

__all__ = ["Frame", "FrameSource", "SourceLost", "open_source", "source_help", "FrameReader"]
