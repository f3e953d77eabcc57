"""The browser studio (edge-app studio): capture, label, train and run live from a web page."""
