"""The wallet API (/api/v1/) for citizens and merchants: parse, call one service or selector, render."""
