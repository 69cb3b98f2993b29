"""The tool loop: chat requests that let the model use hub tools until it can answer."""
