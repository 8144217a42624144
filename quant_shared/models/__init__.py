"""Every table class by name, as seed 002 imports them: ``from quant_shared.models import
Politician, Trade, PatternDiscovery, AnomalyDetection``. The classes are ``shared_models``' own."""

from shared_models.models import Base, DeadLetter, MarketBar
from shared_models.models.discovery import (AnomalyDetection, ModelExperiment, NetworkDiscovery, PatternDiscovery,
                                            Politician, Trade, politician_uuid)

__all__ = ["Base", "DeadLetter", "MarketBar", "Politician", "Trade", "PatternDiscovery", "AnomalyDetection",
           "NetworkDiscovery", "ModelExperiment", "politician_uuid"]
