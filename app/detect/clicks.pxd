from app.ingest.events cimport ClickEvent
