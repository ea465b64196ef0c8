"""MIDAS: Mosaic Input-Specific Differentiable Architecture Search, reproduced.

Importing the package has no side effects; submodules are imported on use.
"""

__version__ = "0.1.0"
