"""Prints `tag step value` for every scalar of a TensorBoard event file, read with TensorFlow's own reader
(which checks the TFRecord CRCs and parses the Event protos)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

events = list(tf.compat.v1.train.summary_iterator(sys.argv[1]))
assert events[0].file_version == "brain.Event:2", events[0]
for event in events[1:]:
    for value in event.summary.value:
        print(f"{value.tag} {event.step} {value.simple_value:g}")
