"""hls4ml extension and our HLS engines: conversion of the ViTCoD model and its C-simulation."""
