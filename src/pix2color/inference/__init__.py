"""Colouring photos with a trained model: the Colorizer (colorizer.py), the one path every
photo takes (spine.py), its full-resolution ends (join.py) and the folder pipeline
(pipeline.py). Importing the package loads nothing; `from pix2color import Colorizer` works."""
