from django.db import models


class Collection(models.Model):
    code = models.SlugField(unique=True)


class Item(models.Model):
    title = models.CharField(max_length=200)
    blurb = models.TextField(blank=True)
    photo = models.ImageField(upload_to="items/")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="items")
