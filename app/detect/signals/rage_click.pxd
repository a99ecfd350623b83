from app.detect.signals.signal cimport DetectionContext
