"""Test infrastructure: throwaway PostgreSQL servers, Streamlit + Chromium helpers."""
