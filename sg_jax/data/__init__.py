"""The data path: text to token ids (text, vocabulary, encoded corpus), the epoch's preparation on
the device, and the window layouts that cut it into steps."""
