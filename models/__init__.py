"""Model families (one module each) and the published model type.

A new family is one new module here defining a :class:`ModelFamily` subclass; third-party packages
add one through the ``automl.models`` entry-point group. Modules whose names start with ``_`` are
infrastructure, not families.
"""

from models._base import Choice, DataShape, Float, Int, ModelFamily, Param
from models._pipeline import AutoMLClassifier, AutoMLRegressor, MissingColumnsError, make_model
from models._registry import ENTRY_POINT_GROUP, FamilyRegistry, registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "AutoMLClassifier",
    "AutoMLRegressor",
    "Choice",
    "DataShape",
    "FamilyRegistry",
    "Float",
    "Int",
    "MissingColumnsError",
    "ModelFamily",
    "Param",
    "make_model",
    "registry",
]
