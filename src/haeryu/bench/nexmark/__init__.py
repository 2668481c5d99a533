"""NEXMark-style benchmark of the stream engine, side by side with Flink and Quix Streams."""
